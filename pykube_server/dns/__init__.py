"""Cluster DNS (CoreDNS's job): the zone from Services, EndpointSlices and Namespaces, served over UDP and TCP."""
