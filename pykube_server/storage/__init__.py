"""Revisioned persistence with etcd's data model; knows keys and bytes, never HTTP."""
