using System.Collections.Concurrent;
using System.Security.Claims;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace Escrow.Api.OperatorConsole;

/// <summary>
/// The console's sign-in: an admin key typed once into a form becomes an HttpOnly, SameSite=Strict cookie (Secure
/// over HTTPS) that lasts 8 hours from the last request. The cookie carries the key's id, never the key; a key removed
/// from Api:AdminKeys stops opening the console at the next request.
/// </summary>
public static class ConsoleAuth
{
    public const string Scheme = "Console";
    public const string Policy = "console";
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(8);

    public static IServiceCollection AddConsoleAuth(this IServiceCollection services)
    {
        services.AddAuthentication().AddCookie(Scheme, o =>
        {
            o.Cookie.Name = "escrow_console";
            o.Cookie.HttpOnly = true;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            o.Cookie.Path = "/console";
            o.ExpireTimeSpan = Lifetime;
            o.SlidingExpiration = true;
            o.LoginPath = "/console/signin";
            o.AccessDeniedPath = "/console/signin";
            o.Events.OnValidatePrincipal = context =>
            {
                var keys = context.HttpContext.RequestServices.GetRequiredService<IOptionsMonitor<ApiKeyOptions>>().CurrentValue;
                var keyId = context.Principal?.Identity?.Name;
                if (keyId is null || !keys.AdminKeys.Any(k => ApiKeyRegistry.KeyId(k) == keyId))
                {
                    context.RejectPrincipal();
                }
                return Task.CompletedTask;
            };
        });
        services.AddAuthorizationBuilder().AddPolicy(Policy, p => p.AddAuthenticationSchemes(Scheme).RequireRole("admin"));
        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "escrow_console_af";
            o.Cookie.Path = "/console";
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.FormFieldName = "__af";
        });
        services.AddSingleton<SignInThrottle>();
        services.AddSingleton<StripeDashboard>();
        return services;
    }

    public static string KeyId(this HttpContext http) => http.User.Identity?.Name ?? throw new InvalidOperationException("The console caller is not signed in.");

    /// <summary>Refuses a console POST whose antiforgery token is missing or wrong with 400, before the handler runs.</summary>
    public static TBuilder RequireAntiforgeryToken<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            if (HttpMethods.IsPost(http.Request.Method) && !await http.RequestServices.GetRequiredService<IAntiforgery>().IsRequestValidAsync(http))
            {
                return ConsolePages.Page(http, "Request refused", Html.Of($"<h1>Request refused</h1><p>The form was missing its security token or it has expired. Go back, reload the page and try again.</p>"),
                    StatusCodes.Status400BadRequest);
            }
            return await next(context);
        });

    public static void MapConsoleSignIn(this RouteGroupBuilder console)
    {
        console.MapGet("/signin", (HttpContext http) => SignInForm(http, null, StatusCodes.Status200OK)).AllowAnonymous();
        console.MapPost("/signin", SignInAsync).AllowAnonymous().RequireAntiforgeryToken();
        console.MapPost("/signout", async (HttpContext http) =>
        {
            await http.SignOutAsync(Scheme);
            return Results.Redirect("/console/signin", permanent: false);
        }).RequireAuthorization(Policy).RequireAntiforgeryToken();
    }

    private static async Task<IResult> SignInAsync(HttpContext http, ApiKeyRegistry keys, SignInThrottle throttle)
    {
        var form = await http.Request.ReadFormAsync();
        var address = http.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        if (throttle.PausedFor(address) is { } wait)
        {
            return SignInForm(http, $"Too many wrong keys from this address: wait {Math.Ceiling(wait.TotalSeconds)} seconds before trying again.", StatusCodes.Status429TooManyRequests);
        }
        var caller = keys.Identify(form["key"].ToString());
        if (caller?.Role != ApiRole.Admin)
        {
            throttle.Failed(address);
            return SignInForm(http, "That is not an admin key.", StatusCodes.Status401Unauthorized);
        }
        throttle.Succeeded(address);
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, caller.KeyId), new Claim(ClaimTypes.Role, "admin")], Scheme);
        await http.SignInAsync(Scheme, new ClaimsPrincipal(identity), new AuthenticationProperties { IsPersistent = false });
        var returnUrl = form["returnUrl"].ToString();
        // Only a path inside the console: never an absolute or protocol-relative address (an open redirect).
        var target = returnUrl.StartsWith("/console", StringComparison.Ordinal) && !returnUrl.StartsWith("//", StringComparison.Ordinal) ? returnUrl : "/console";
        return Results.Redirect(target, permanent: false);
    }

    private static IResult SignInForm(HttpContext http, string? error, int status)
    {
        var returnUrl = http.Request.HasFormContentType ? http.Request.Form["returnUrl"].ToString() : http.Request.Query["ReturnUrl"].ToString();
        var body = Html.Of($"""
            <h1>Sign in to the escrow console</h1>
            {Html.When(error is not null, Html.Of($"<p class=\"error\" role=\"alert\">{error}</p>"))}
            <form method="post" action="/console/signin" class="stack">
              {ConsolePages.Token(http)}
              <input type="hidden" name="returnUrl" value="{returnUrl}">
              <label for="key">Admin key</label>
              <input type="password" id="key" name="key" autocomplete="current-password" required autofocus>
              <button type="submit">Sign in</button>
            </form>
            """);
        return ConsolePages.Page(http, "Sign in", body, status, signedIn: false);
    }
}

/// <summary>
/// Slows down key guessing: after <see cref="FailuresBeforePause"/> wrong keys from one address, that address is
/// refused without looking at the key until <see cref="Pause"/> has passed since its last failure.
/// </summary>
public sealed class SignInThrottle(TimeProvider clock)
{
    public const int FailuresBeforePause = 5;
    public const int AddressesMax = 10_000;
    public static readonly TimeSpan Pause = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan Memory = TimeSpan.FromMinutes(15);

    private readonly ConcurrentDictionary<string, (int Failures, DateTimeOffset Last)> _failures = new();

    public TimeSpan? PausedFor(string address)
    {
        if (!_failures.TryGetValue(address, out var entry) || entry.Failures < FailuresBeforePause)
        {
            return null;
        }
        var left = entry.Last + Pause - clock.GetUtcNow();
        return left > TimeSpan.Zero ? left : null;
    }

    public void Failed(string address)
    {
        var now = clock.GetUtcNow();
        if (_failures.Count >= AddressesMax)
        {
            foreach (var (key, value) in _failures)
            {
                if (now - value.Last > Memory)
                {
                    _failures.TryRemove(key, out _);
                }
            }
        }
        _failures.AddOrUpdate(address, (1, now), (_, e) => (now - e.Last > Memory ? 1 : e.Failures + 1, now));
    }

    public void Succeeded(string address) => _failures.TryRemove(address, out _);
}
