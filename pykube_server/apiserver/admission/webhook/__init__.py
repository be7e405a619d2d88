"""Admission webhooks: MutatingAdmissionWebhook and ValidatingAdmissionWebhook.

kube-apiserver calls out to HTTPS services named by MutatingWebhookConfigurations and
ValidatingWebhookConfigurations (admissionregistration.k8s.io/v1) with an AdmissionReview v1,
and operators test their webhooks against it; this package behaves the same way, texts included.

Modules, one job each: `configs` (the configurations, read from the watch cache), `matching`
(rules, scope, namespaceSelector, objectSelector, matchPolicy), `conditions` (CEL
matchConditions), `review` (the AdmissionReview request and the checks on its response),
`caller` (where a webhook lives and the HTTPS POST, with kube's error texts), `dispatch` (the
two plugins: failurePolicy, sideEffects on dry run, denial, JSONPatch, warnings, reinvocation).
"""
