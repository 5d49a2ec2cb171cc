"""Village scoring and ranking (季度观摩、打分排位): `periods` (period keys → time ranges),
`scoring` (pure: components → score, ranks with ties, trend), `collect` (the components
from stored data), `service` (a ranking per period with its breakdown). See docs/rankings.md.
"""
