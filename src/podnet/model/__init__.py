"""podnet's resource model: object kinds, defaulting, validation, selectors, manifests. No I/O
except reading manifest files.

Entry points:
- `defaults.apply_defaults(obj)`, `validation.validate(obj, old=None)` (+ `wiretypes.decode_error`)
- `services`: what Services mean beyond their fields (headless, the EndpointSlice labels)
- `selectors.from_map`, `from_label_selector`, `parse`, `parse_field_selector`, `field_value`
- `manifests.load_manifests(source, text=None)` and `manifests.ManifestError`

Modules: kinds, errors (field errors, Go value rendering), names (name/label syntax), quantity,
defaults, validation (+ validation_meta/_service/_pod/_container/_apps/_misc), wiretypes,
selectors (+ fieldselectors), manifests (+ manifest_text, manifest_schema).
"""
