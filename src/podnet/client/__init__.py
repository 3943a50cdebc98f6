"""How every podnet process reaches the API: `client.ApiClient` (http, https with the cluster CA, or a
unix socket) and `informer.Informer` (list + watch + local cache, resuming as client-go does)."""
