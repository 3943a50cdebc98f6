"""podnet's Kubernetes-compatible API server.

Entry point: `podnet.api.server.APIServer` (its hooks are wired by the caller). Modules, outside in:

- server      -- aiohttp app, auth and error middleware, discovery/health routes, lifecycle
- routing     -- URL path -> (resource type, namespace, name, subresource)
- handlers    -- HTTP verbs of resources: decode, call the registry, encode (JSON / Table)
- watch       -- chunked watch streams from the store's watch
- logs        -- pods/log proxied to the node agent's kubelet-style endpoint
- registry    -- the write pipeline: defaults -> hooks -> validation -> store; reads; status; binding
- subresources-- PATCH (merge, JSON, strategic, server-side apply) and the scale subresource
- deletion    -- DELETE: preconditions, graceful pods, finalizers, propagation, namespaces
- gc          -- garbage collector and namespace cleaner, running inside the server
- dependents  -- owner index (ownerReferences) fed by the store's watch
- strategy    -- per-resource create/update rules; bridge to podnet.model defaults/validation
- fieldvalidation -- unknown fields: ?fieldValidation=Warn (Warning headers) / Strict / Ignore
- smp, patching, protobuf, selection, discovery, objmeta, tables -- the formats and helpers
- errors, hooks -- Status errors and the allocation-hook protocol (shared with other layers)
"""
