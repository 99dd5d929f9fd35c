"""The configuration files the pip-only cluster writes: zeo.conf, zope.conf, zope.ini, site.zcml.
Not for add-ons (docs/deploy.md has the same for production).
"""


# A stock ZEO server cannot import Plone's classes (DateTime in the catalog's metadata, ...),
# so it cannot resolve conflicts on the objects holding them: the clients do (ZEO 5+).
ZEO_CONF = """\
<zeo>
  address 127.0.0.1:{port}
  client-conflict-resolution true
</zeo>
<filestorage 1>
  path {var}/Data.fs
  blob-dir {var}/blobs
</filestorage>
<filestorage async>
  path {var}/Async.fs
</filestorage>
<eventlog>
  <logfile>
    path {var}/zeo.log
  </logfile>
</eventlog>
"""

ZOPE_CONF = """\
%define INSTANCE {home}
instancehome $INSTANCE
clienthome $INSTANCE/var
debug-mode {debug_mode}
security-policy-implementation C
verbose-security off
default-zpublisher-encoding utf-8
<environment>
  ZASYNC_UUID $INSTANCE/var/worker-uuid.txt
  CHAMELEON_CACHE $INSTANCE/var/cache
</environment>
<product-config collective.zasync>
{product_config}
</product-config>
{databases}
"""

ZEO_DB = """\
<zodb_db main>
  <zeoclient>
    server 127.0.0.1:{zeo_port}
    storage 1
    name main
    blob-dir {zeo_var}/blobs
    shared-blob-dir true
  </zeoclient>
  mount-point /
  cache-size 50000
</zodb_db>
"""

STANDALONE_DB = """\
<zodb_db main>
  <filestorage>
    path $INSTANCE/var/filestorage/Data.fs
    blob-dir $INSTANCE/var/blobstorage
  </filestorage>
  mount-point /
</zodb_db>
"""

ASYNC_DB = """\
<zodb_db async>
  <zeoclient>
    server 127.0.0.1:{zeo_port}
    storage async
    name async
  </zeoclient>
  mount-point /zasync
</zodb_db>
"""

# keep-history false: as Plone's images have it (no undo, no packing of old revisions).
RELSTORAGE = """\
  <relstorage>
    <postgresql>
      dsn {dsn}
    </postgresql>
    keep-history false
{blobs}  </relstorage>"""

# Each process has its own blob cache; the blobs themselves are in PostgreSQL.
RELSTORAGE_BLOBS = """\
    blob-dir {blob_dir}
    shared-blob-dir false
"""

RELSTORAGE_DB = """\
<zodb_db {name}>
{storage}
  mount-point {mount_point}
  cache-size 50000
</zodb_db>
"""

ZOPE_INI = """\
[app:zope]
use = egg:Zope#main
zope_conf = %(here)s/zope.conf

[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = {http_port}
threads = 4

[pipeline:main]
pipeline =
    egg:Zope#httpexceptions
    zope

[loggers]
keys = root

[handlers]
keys = logfile

[formatters]
keys = generic

[logger_root]
level = INFO
handlers = logfile

[handler_logfile]
class = FileHandler
args = (r'{home}/var/instance.log', 'a')
level = INFO
formatter = generic

[formatter_generic]
format = %(asctime)s %(levelname)s [%(name)s][%(threadName)s] %(message)s
"""

SITE_ZCML = """\
<configure
    xmlns="http://namespaces.zope.org/zope"
    xmlns:five="http://namespaces.zope.org/five">
  <include package="Zope2.App" />
  <five:loadProducts file="meta.zcml" />
  <five:loadProducts />
  <!-- after Plone (which loads collective.zasync through plone.autoinclude) -->
  <include package="collective.zasync" file="{zcml}" />
  <!-- the demo pages of make run (not part of the add-on's configuration) -->
  <include package="collective.zasync.dev.demo" />
  <five:loadProductsOverrides />
</configure>
"""

DEFAULT_WORKER_CONFIG = {"threads": "2", "poll-interval": "0", "ping-interval": "2", "death-interval": "10"}
