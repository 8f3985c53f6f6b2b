"""The composition root: what puts the areas together. The worker (`app.worker`), its
web server's routes, `leadscore dev` (`app.dev`) and the `leadscore` command (`app.cli`)
live here, and only here is every area imported; the areas import the ground (`leadscore`)
and themselves. docs/development.md has the map and how to add an area."""
