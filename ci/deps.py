"""Print the project's Python dependencies (runtime and test) from pyproject.toml, for pip."""
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
deps = list(project.get("dependencies", []))
for group in project.get("optional-dependencies", {}).values():
    deps.extend(group)
print(" ".join(dict.fromkeys(deps)))
