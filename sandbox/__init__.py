"""Local stand-ins for the cloud services keyreport talks to: test infrastructure, never zipped.

The Azure emulators (``entra``, ``keyvault``, ``data_collector``) speak the documented protocols over
real HTTPS (``https``) with a throwaway CA (``tls``), so the product's real SDKs run against them.
"""
