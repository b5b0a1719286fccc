using System.Security.Cryptography;

namespace Escrow.Api.Hosting;

/// <summary>API keys (section "Api"): lists, so a key can be rotated by adding the new one before removing the old.</summary>
public sealed class ApiKeyOptions
{
    public const string Section = "Api";

    public List<string> PlatformKeys { get; set; } = [];

    public List<string> AdminKeys { get; set; } = [];
}

public sealed class ApiKeyOptionsValidator : IValidateOptions<ApiKeyOptions>
{
    public ValidateOptionsResult Validate(string? name, ApiKeyOptions o) => new Escrow.Grains.OptionsErrors()
        .If(!o.PlatformKeys.Concat(o.AdminKeys).All(k => k.Length >= 16), "Every key in Api:PlatformKeys and Api:AdminKeys must be at least 16 characters long.")
        .If(o.AdminKeys.Count == 0, "Api:AdminKeys needs at least one key (Api__AdminKeys__0).")
        .Result();
}

public enum ApiRole
{
    Platform = 0,
    Admin = 1,
}

/// <summary>Who called: the role and a key id that names the key without revealing it (for the audit trail).</summary>
public sealed record Caller(ApiRole Role, string KeyId);

public sealed class ApiKeyRegistry(IOptions<ApiKeyOptions> options)
{
    public const string Header = "X-Api-Key";

    public Caller? Identify(string? presented)
    {
        if (string.IsNullOrEmpty(presented))
        {
            return null;
        }
        // Every key is compared, in constant time, so timing says nothing about which key nearly matched.
        Caller? found = null;
        foreach (var key in options.Value.AdminKeys)
        {
            if (FixedTimeEquals(key, presented))
            {
                found ??= new Caller(ApiRole.Admin, KeyId(key));
            }
        }
        foreach (var key in options.Value.PlatformKeys)
        {
            if (FixedTimeEquals(key, presented))
            {
                found ??= new Caller(ApiRole.Platform, KeyId(key));
            }
        }
        return found;
    }

    public bool IsAdminKey(string? presented) => Identify(presented)?.Role == ApiRole.Admin;

    public static string KeyId(string key) => "key-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..12];

    public static bool FixedTimeEquals(string expected, string presented) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(expected)), SHA256.HashData(Encoding.UTF8.GetBytes(presented)));
}

public static class ApiKeyEndpointExtensions
{
    /// <summary>401 without a known key, 403 with a key of another role; the OpenAPI document lists the key and both refusals.</summary>
    public static TBuilder RequireApiKey<TBuilder>(this TBuilder builder, params ApiRole[] roles) where TBuilder : IEndpointConventionBuilder =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var caller = http.RequestServices.GetRequiredService<ApiKeyRegistry>().Identify(http.Request.Headers[ApiKeyRegistry.Header]);
            if (caller is null)
            {
                return Problems.Unauthorized("Send a valid API key in the X-Api-Key header.");
            }
            if (!roles.Contains(caller.Role))
            {
                return Problems.Forbidden($"This endpoint needs a {string.Join(" or ", roles.Select(r => r.ToString().ToLowerInvariant()))} key.");
            }
            http.Items[typeof(Caller)] = caller;
            return await next(context);
        }).WithMetadata(
            new Escrow.Api.OpenApi.ApiAuthMetadata([.. roles.Select(r => r == ApiRole.Admin ? Escrow.Api.OpenApi.ApiAuth.AdminKey : Escrow.Api.OpenApi.ApiAuth.PlatformKey)]),
            new ProducesResponseTypeMetadata(StatusCodes.Status401Unauthorized, typeof(Escrow.Api.OpenApi.ApiProblem), [Escrow.Api.OpenApi.ApiDocs.ProblemJson]),
            new ProducesResponseTypeMetadata(StatusCodes.Status403Forbidden, typeof(Escrow.Api.OpenApi.ApiProblem), [Escrow.Api.OpenApi.ApiDocs.ProblemJson]));

    public static Caller Caller(this HttpContext http) => (Caller)http.Items[typeof(Caller)]!;
}
