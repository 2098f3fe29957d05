// Package deploy holds no code, only tests that keep the deployment files in the
// repository root (compose.yaml) consistent with the msdemo binary and with the
// architecture's rules: every service has a health check and waits for healthy
// dependencies, only the gateway and the two sites are published on the host,
// and databases sit on private networks.
package deploy
