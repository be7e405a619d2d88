"""CustomResourceDefinitions: the CRD kind (`definition`, `validation`) and what a CRD serves
(`resource`: specs, strategies and OpenAPI of its custom objects, validated, pruned and
defaulted by `schema`; printer columns through `jsonpath`)."""
