"""The one place that talks to Amazon: Login with Amazon, the Selling Partner API (Orders v2026
and v0, Tokens, Reports, Sellers), rate limits, and normalisation into ``OrderRecord``.

Start from ``client.SpApiClient`` (one per connection); ``regions`` builds endpoints and consent
URLs, ``lwa.LwaClient`` exchanges authorization codes, ``errors`` lists what can go wrong.
"""
