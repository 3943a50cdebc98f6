"""podnet's resource model: object kinds, defaulting, validation, selectors, manifests.

Entry points others use:
- `apply_defaults(obj)` (defaults.py), `validate(obj, old)` (validation.py)
- `selectors.from_map`, `from_label_selector`, `parse`, `parse_field_selector`, `field_value`
- `load_manifests(source, text=None)` and `ManifestError` (manifests.py)
"""
