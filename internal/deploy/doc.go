// Package deploy holds no code, only tests that keep the deployment files consistent
// with the msdemo binary and with the architecture's rules. compose.yaml: every service
// has a health check and waits for healthy dependencies, only the gateway and the two
// sites are published on the host, and databases sit on private networks.
// deploy/kubernetes: the base and the overlay render with kustomize and decode strictly
// as Kubernetes objects, and every component has its Deployment, Service, probes,
// resources, replicas and disruption budget, with only variables that msdemo reads, every
// variable compose.yaml gives it, and no secret written in (they come from a Secret the
// operator creates).
package deploy
