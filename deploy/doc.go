// Package deploy holds faceidq's deployment files and the test that keeps them honest.
//
//	Dockerfile                 multi-stage build of a static binary on distroless, non-root
//	k8s/                       Kubernetes base (kubectl apply -k deploy/k8s)
//	prometheus/                scrape configurations (compose, Kubernetes) and alert rules
//	grafana/                   the dashboard and its provisioning
//	../docker-compose.yml      Redis, api, workers, simulator, asynqmon (+ monitoring profile)
//
// There is no Go API here. deploy_test.go parses every file and checks it against the
// program: the environment variables cmd/faceidq reads, the metrics internal/metrics
// defines and the label values the code emits, the ports and probes, and it runs the
// Dockerfile's own `go build` command. docs/operations.md explains how to use them.
package deploy
