"""The API client stage: credentials -> signing -> the three calls -> wire models.

`credentials` chooses a provider of alibabacloud-credentials per workspace; `signing` signs every
request with what it currently supplies (ACS3-HMAC-SHA256, an httpx Auth); `client` makes the
three calls with paging, retries and bounded concurrency; `wire` validates what they return.
"""
