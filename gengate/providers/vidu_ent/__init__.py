"""Vidu platform format (`/vidu/ent/v2`, vidu.md §3): provider `vidu-ent`."""
