"""gitops-glue: composable glue between CI pipelines and Helm/helmfile deployments."""

__version__ = "0.1.0"
