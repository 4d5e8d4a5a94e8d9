"""login-stream: real-time analytics of user login events on Apache Kafka."""

import warnings

from authlib.deprecate import AuthlibDeprecationWarning

# Quix Streams imports authlib (for Quix Cloud, unused here), which warns on every start.
# authlib installs an "always" filter when imported, so ours has to be added after that.
warnings.filterwarnings("ignore", category=AuthlibDeprecationWarning)
