using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Escrow.Api.Hosting;

/// <summary>Says where everything is, which secrets were generated for this run, and whether state is durable.</summary>
public static class StartupBanner
{
    public static void Print(WebApplication app, bool stripeSandbox, bool postmarkSandbox, SandboxHosting.Generated generated, LocalStorage storage)
    {
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault() ?? "http://localhost";
        var lines = new List<string>
        {
            $"Escrow API listening on {address} ({app.Environment.EnvironmentName})",
            $"  OpenAPI   {address}/openapi/v1.json",
            $"  Scalar    {address}/scalar/v1",
            $"  Dashboard {address}/dashboard/ (HTTP Basic: any user, an admin key as password)",
            $"  Health    {address}/health/live  {address}/health/ready",
            stripeSandbox ? $"  Stripe    SANDBOX at {address}/_sandbox/stripe (no Stripe keys configured)" : "  Stripe    live API (Stripe:SecretKey set)",
            postmarkSandbox ? $"  Postmark  SANDBOX at {address}/_sandbox/postmark (outbox: GET {address}/_sandbox/postmark/outbox)" : "  Postmark  live API (Postmark:ServerToken set)",
        };
        lines.AddRange(generated.Lines.Select(l => "  " + l));
        lines.Add(storage.Describe(app.Configuration));
        lines.Add("Press Ctrl+C to stop.");
        Console.WriteLine(string.Join(Environment.NewLine, lines));
    }
}
