"""What a container runs: the machine's OCI image store (`store`), pulls through skopeo (`skopeo`), and
the built-in images (`registry`: agnhost, web servers, http-echo, DNS) standing in for registry images."""
