"""Thin rclpy nodes over the library, one per file; each has a Node subclass and a main()."""
