using Escrow.Sandbox;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Escrow.Benchmarks;

/// <summary>
/// The Stripe and Postmark emulators in a process of their own (<c>--separate-emulators</c>): the service under test
/// then calls them over the network as it calls Stripe and Postmark, and neither their CPU nor their heap (they keep
/// every object, event and e-mail) is counted as the API's. Events are delivered to the API's webhook.
/// </summary>
public sealed class EmulatorProcess : ChildProcess
{
    public const string Command = "emulators";
    public const string StripeKey = "sk_test_sandbox_benchmark_emulator";
    public const string PostmarkToken = "benchmark-postmark-emulator";

    private bool _disposed;

    private EmulatorProcess(Process process, StreamWriter log, string baseUrl, string logPath)
        : base(process, log, baseUrl, logPath)
    {
    }

    /// <summary>What the service needs to use these emulators instead of hosting its own.</summary>
    public Dictionary<string, string> ServiceEnvironment() => new()
    {
        // Not the sandbox's own key or token: the API then hosts no emulator of its own and calls these, as it would call
        // Stripe. The key still has the sandbox's prefix: it is not a real key, so the API is not in live mode.
        ["Stripe__SecretKey"] = StripeKey,
        ["Stripe__ApiBase"] = BaseUrl + "/_sandbox/stripe",
        ["Postmark__ServerToken"] = PostmarkToken,
        ["Postmark__ApiBase"] = BaseUrl + "/_sandbox/postmark",
    };

    /// <summary>Starts this program's <see cref="Command"/> and waits until it answers.</summary>
    public static Task<EmulatorProcess> StartAsync(string webhookUrl, string webhookSecret, string logPath, HttpClient http)
    {
        var baseUrl = $"http://127.0.0.1:{BenchPostgres.FreePort()}";
        var info = ForDll(typeof(EmulatorProcess).Assembly.Location);
        foreach (var argument in new[] { Command, "--url", baseUrl, "--webhook-url", webhookUrl, "--webhook-secret", webhookSecret })
        {
            info.ArgumentList.Add(argument);
        }
        return StartAsync(info, [], baseUrl, "/health", logPath, "emulators", http, (p, log) => new EmulatorProcess(p, log, baseUrl, logPath));
    }

    /// <summary>The child process: the emulators on <c>--url</c>, delivering events to <c>--webhook-url</c>.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        string? Arg(string name) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        var url = Arg("--url");
        var webhookUrl = Arg("--webhook-url");
        var secret = Arg("--webhook-secret");
        if (url is null || webhookUrl is null || secret is null)
        {
            Console.Error.WriteLine($"usage: {Command} --url http://127.0.0.1:PORT --webhook-url URL --webhook-secret whsec_...");
            return 2;
        }
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(url);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddEscrowSandbox(o =>
        {
            o.WebhookSecret = secret;
            o.WebhookUrl = new Uri(webhookUrl);
            o.PostmarkServerToken = PostmarkToken;
        });
        var app = builder.Build();
        app.MapGet("/health", () => Results.Ok());
        app.MapStripeSandbox();
        app.MapPostmarkSandbox();
        await app.RunAsync();
        return 0;
    }

    /// <summary>Stops the emulators; the benchmark does so after the lifecycle phases, and again (a no-op) on the way out.</summary>
    public override async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await KillAsync();
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"emulators pid {Pid} at {BaseUrl}");
}
