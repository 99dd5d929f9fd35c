from zope.publisher.interfaces.browser import IDefaultBrowserLayer


class ICollectiveZasyncLayer(IDefaultBrowserLayer):
    """Marker interface for the browser layer of collective.zasync."""
