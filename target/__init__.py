"""voiceload reference voice agent: the default system under test.

Serves the REST endpoints and media WebSockets of all three target profiles (artagent-v1, rtmedagent,
twilio-media) at once, behind a modelled STT -> LLM -> TTS cascade. Run: `python -m target --port 8000`.
"""
