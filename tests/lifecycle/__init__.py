"""Multi-host test harness for the lifecycle playbooks: hosts as network namespaces over SSH."""
