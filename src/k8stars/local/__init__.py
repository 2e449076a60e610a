"""The local runner: the registry and service replicas on this machine, without Kubernetes.

``k8stars up DIR...`` starts ``tarsregistry`` on SQLite and N replicas of each service, each a
simulated pod (:mod:`.pod`): its own ``TARS_PATH``, ``POD_IP`` (127.0.0.x), ``POD_NAME`` and
``POD_UID``, ``tarscli supervisor`` as its main process, a kubelet-like readiness probe
(``tarscli hzcheck``) and a kubelet-like delete (preStop, SIGTERM, SIGKILL after the grace
period). The runner (:mod:`.runner`) owns them; the other commands (:mod:`.main`) talk to it
through its state directory (:mod:`.state`).
"""
