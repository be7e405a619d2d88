"""PersistentVolumes: the binder (`persistentvolume-binder-controller`), the local-path
provisioner, and the PVC/PV protection controllers."""
