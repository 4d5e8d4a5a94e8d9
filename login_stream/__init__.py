"""login-stream: real-time analytics of user login events on Apache Kafka."""

import warnings

# Quix Streams imports authlib's httpx integration, which warns on every start about a
# dependency the pipeline never uses; users should not see it.
warnings.filterwarnings("ignore", message="The httpx module is deprecated")
