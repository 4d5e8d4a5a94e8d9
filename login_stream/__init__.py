"""login-stream: real-time analytics of user login events on Apache Kafka."""
