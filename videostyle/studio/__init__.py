"""``videostyle studio``: a local web app over the same renders as the command line.

``media`` keeps the uploads (in the studio's own folder, by id, never by a path from a request),
``jobs`` runs previews and the render queue (one render at a time per device, each a CLI render
with its work folder), ``app`` serves the page and the API behind the session token. Nothing here
prints: ``cli`` starts the server and says where it is."""
