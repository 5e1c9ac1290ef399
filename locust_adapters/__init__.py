"""The Locust adapters of the load side: everything that wires voiceload's pure parts (metrics/, reporting/)
into a Locust process. `plugin.install` registers the listeners for the process's role; `events.record_and_fire`
records a sample and fires it as a Locust request; `internals` is the one module that touches Locust
internals, and checks the installed Locust is the version it was written for."""
