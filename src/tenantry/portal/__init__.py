"""The portal: server-rendered pages where people sign in, create workspaces and watch them come up."""
