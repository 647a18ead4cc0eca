package v1

// Well-known label and annotation keys (upstream pkg/apis/serving/register.go).
const (
	GroupName                       = "serving.knative.dev"
	ServiceLabelKey                 = GroupName + "/service"
	ServiceUIDLabelKey              = GroupName + "/serviceUID"
	ConfigurationLabelKey           = GroupName + "/configuration"
	ConfigurationUIDLabelKey        = GroupName + "/configurationUID"
	ConfigurationGenerationLabelKey = GroupName + "/configurationGeneration"
	RevisionLabelKey                = GroupName + "/revision"
	RevisionUIDLabelKey             = GroupName + "/revisionUID"
	RouteLabelKey                   = GroupName + "/route"
	RouteNamespaceLabelKey          = GroupName + "/routeNamespace"
	RoutingStateLabelKey            = GroupName + "/routingState"
	RoutingStateModifiedAnnotation  = GroupName + "/routingStateModified"
	RoutesAnnotationKey             = GroupName + "/routes"
	CreatorAnnotation               = GroupName + "/creator"
	UpdaterAnnotation               = GroupName + "/lastModifier"
	RolloutDurationKey              = GroupName + "/rollout-duration"
	RolloutDurationAltKey           = GroupName + "/rolloutDuration"
	ProgressDeadlineAnnotation      = GroupName + "/progress-deadline"
	NoGCAnnotation                  = GroupName + "/no-gc"
	LastPinnedAnnotation            = GroupName + "/lastPinned"
	VisibilityLabelKey              = "networking.knative.dev/visibility"
	// ServiceTypeLabelKey tells a revision's Services apart: Public or Private.
	ServiceTypeLabelKey        = "networking.internal.knative.dev/serviceType"
	VisibilityClusterLocal     = "cluster-local"
	networkingAnnotationPrefix = "networking.knative.dev/"
	// SessionAffinityAnnotation, knd's own, set to "cookie" on a Service
	// (or Route), keeps a client on the revision a traffic split first gave
	// it, as Cloud Run's session affinity does (SessionAffinityCookie).
	SessionAffinityAnnotation = "knd.dev/session-affinity"
	SessionAffinityCookie     = "knd-revision"
	// LastAppliedAnnotation is kubectl's; it is never copied to children.
	LastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"
)

// Routing states of a revision (label serving.knative.dev/routingState).
const (
	RoutingStatePending = "pending"
	RoutingStateActive  = "active"
	RoutingStateReserve = "reserve"
)

// Condition types.
const (
	ConditionReady                  = "Ready"
	ConditionConfigurationsReady    = "ConfigurationsReady"
	ConditionRoutesReady            = "RoutesReady"
	ConditionResourcesAvailable     = "ResourcesAvailable"
	ConditionContainerHealthy       = "ContainerHealthy"
	ConditionActive                 = "Active"
	ConditionAllTrafficAssigned     = "AllTrafficAssigned"
	ConditionIngressReady           = "IngressReady"
	ConditionCertificateProvisioned = "CertificateProvisioned"
)
