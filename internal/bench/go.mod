module github.com/genaihook/genaihook/internal/bench

go 1.26.0

require (
	github.com/genaihook/genaihook v0.0.0-00010101000000-000000000000
	github.com/standard-webhooks/standard-webhooks/libraries v0.0.1
	github.com/svix/svix-webhooks v1.44.0
)

require (
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	gopkg.in/validator.v2 v2.0.1 // indirect
)

replace github.com/genaihook/genaihook => ../..
