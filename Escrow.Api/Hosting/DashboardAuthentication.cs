using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;

namespace Escrow.Api.Hosting;

/// <summary>
/// A browser cannot send X-Api-Key, so the Orleans dashboard takes HTTP Basic: any user name, an admin key as the password.
/// <c>Authorization: Bearer &lt;admin key&gt;</c> is accepted too: it is what Prometheus sends to scrape /metrics.
/// </summary>
public sealed class DashboardAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyRegistry keys)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "DashboardBasic";
    public const string Policy = "dashboard";

    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(Admin(keys.Identify(header[7..].Trim()), "The bearer token is not an admin key."));
        }
        if (!header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }
        string decoded;
        try
        {
            decoded = Encoding.UTF8.GetString(Convert.FromBase64String(header[6..].Trim()));
        }
        catch (FormatException)
        {
            return Task.FromResult(AuthenticateResult.Fail("Malformed Basic credentials."));
        }
        var password = decoded[(decoded.IndexOf(':', StringComparison.Ordinal) + 1)..];
        return Task.FromResult(Admin(keys.Identify(password), "The password is not an admin key."));
    }

    private static AuthenticateResult Admin(Caller? caller, string refusal)
    {
        if (caller?.Role != ApiRole.Admin)
        {
            return AuthenticateResult.Fail(refusal);
        }
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, caller.KeyId), new Claim(ClaimTypes.Role, "admin")], SchemeName);
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.StatusCode = StatusCodes.Status401Unauthorized;
        Response.Headers.WWWAuthenticate = "Basic realm=\"escrow-dashboard\", charset=\"UTF-8\"";
        return Task.CompletedTask;
    }
}
