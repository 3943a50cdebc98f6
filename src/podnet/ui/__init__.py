"""The live web view (`podnet ui`): an aiohttp server on loopback with a plain-SVG page."""
