// Package podport holds where a pod's serving container is reached, shared
// by the revision reconciler (which declares the port), the node agent
// (which runs the pod) and the gateway (which dials it).
package podport

// Default is the port a serving container without a declared
// containerPort listens on ($PORT), as upstream's user port.
const Default = 8080

// Annotation publishes the loopback port a pod on the host network listens
// on: such pods share the host's network, so each gets its own port (also
// passed as PORT); the pod IP alone does not say where to reach it. Pods
// with a network of their own listen on their containers' ports at their
// own IP and carry no annotation. knd's own, not upstream's.
const Annotation = "knd.dev/port"
