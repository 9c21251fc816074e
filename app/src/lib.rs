//! The hello-k8s companion app: shared configuration, Redis store and HTTP plumbing.
