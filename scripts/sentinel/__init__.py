"""The Microsoft Sentinel solution (azure/sentinel/), rendered from the query library and the compliance map.

solution.py names the package (id, version, release notes); controls.py reads the compliance map; rules.py
builds the analytics rules and hunting queries; connector.py the data connector; workbook.py the workbook;
package.py the one-step deployment (Package/mainTemplate.json, createUiDefinition.json). scripts/render_sentinel.py
writes every file (`make render`).
"""
