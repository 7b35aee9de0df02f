// Package deploy holds faceidq's deployment files (Dockerfile, Kubernetes, Prometheus,
// Grafana) and the tests that keep them honest: they check every file against what the
// built binary lists (`faceidq help --list`) and the metrics the code defines, and run
// the processes the manifests describe. There is no Go API here; docs/operations.md
// explains the files.
package deploy
