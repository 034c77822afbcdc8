"""The cache layers a site's `caches:` may list, the one registry of them: each type's name → its purger,
which carries its options' model (`Options`, validated by the config). Adding a layer is one module in this
folder (its options and its purger) and one line here."""

from __future__ import annotations

from wpgate.caches import Layer
from wpgate.caches.bunny import Bunny
from wpgate.caches.cloudflare import Cloudflare
from wpgate.caches.fastly import Fastly
from wpgate.caches.nginx import Nginx
from wpgate.caches.varnish import Varnish
from wpgate.caches.webhook import Webhook

LAYERS: dict[str, type[Layer]] = {layer.name: layer for layer in (Varnish, Nginx, Cloudflare, Fastly, Bunny, Webhook)}
