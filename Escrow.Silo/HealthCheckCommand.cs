using System.Globalization;

namespace Escrow.Silo;

/// <summary>
/// <c>--health-check [url]</c>: asks a running host for its health and exits 0 when it answers 2xx, 1 otherwise.
/// Container health checks run it with the host's own dll, because the ASP.NET runtime image has neither wget nor curl.
/// Without a URL it asks <c>/health/ready</c> on the port of ASPNETCORE_URLS (5080 when unset), on 127.0.0.1.
/// </summary>
public static class HealthCheckCommand
{
    public const string Argument = "--health-check";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(5);

    /// <summary>The exit code when <paramref name="args"/> asks for a health check; null to start the host as usual.</summary>
    public static int? Run(string[] args)
    {
        var at = Array.IndexOf(args, Argument);
        if (at < 0)
        {
            return null;
        }
        var url = at + 1 < args.Length ? args[at + 1] : DefaultUrl(Environment.GetEnvironmentVariable("ASPNETCORE_URLS"));
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            Console.Error.WriteLine($"{Argument}: '{url}' is not an http(s) URL.");
            return 2;
        }
        using var client = new HttpClient { Timeout = Timeout };
        try
        {
            using var response = client.GetAsync(uri).GetAwaiter().GetResult();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{uri} answered {(int)response.StatusCode}"));
            return response.IsSuccessStatusCode ? 0 : 1;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Console.Error.WriteLine($"{uri}: {e.Message}");
            return 1;
        }
    }

    /// <summary>The first listen address's port on loopback (a host listening on 0.0.0.0 or * answers there too).</summary>
    public static string DefaultUrl(string? urls)
    {
        var first = urls?.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault();
        var port = 5080;
        var scheme = "http";
        if (first is not null && Uri.TryCreate(first.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var listen))
        {
            port = listen.Port;
            scheme = listen.Scheme;
        }
        return string.Create(CultureInfo.InvariantCulture, $"{scheme}://127.0.0.1:{port}/health/ready");
    }
}
