using System.Diagnostics.Metrics;
using Escrow.Grains.Storage;
using Npgsql;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Escrow.Silo;

/// <summary>
/// OpenTelemetry: the Escrow meter and activity source, Orleans' own, ASP.NET Core, HttpClient (Stripe, Postmark)
/// and Npgsql. Metrics: a Prometheus scrape endpoint always, OTLP too when OTEL_EXPORTER_OTLP_ENDPOINT (or
/// Telemetry:OtlpEndpoint) is set. Traces go only to OTLP, so they are collected only when it is set: without an
/// exporter every HTTP request, grain call and SQL command would build spans that nobody reads.
/// </summary>
public static class EscrowTelemetryHosting
{
    /// <summary>The OTLP endpoint, or null when none is configured.</summary>
    public static string? OtlpEndpoint(IConfiguration configuration) =>
        (configuration["Telemetry:OtlpEndpoint"] ?? configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]) is { } otlp && !string.IsNullOrWhiteSpace(otlp)
            ? otlp
            : null;

    public static IServiceCollection AddEscrowTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var otlp = OtlpEndpoint(configuration);
        var telemetry = services.AddOpenTelemetry()
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(EscrowTelemetry.Name, "Microsoft.Orleans")
                    .AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    .AddPrometheusExporter();
                if (otlp is not null)
                {
                    metrics.AddOtlpExporter(o => o.Endpoint = new Uri(otlp));
                }
            });
        if (otlp is not null)
        {
            telemetry.WithTracing(tracing => tracing
                .AddSource(EscrowTelemetry.Name, "Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application")
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddNpgsql()
                .AddOtlpExporter(o => o.Endpoint = new Uri(otlp)));
        }
        services.AddHostedService<OpenEscrowsGauge>();
        return services;
    }
}

/// <summary>Reads the open escrows per status from the projection every 15 s for the escrow.open gauge.</summary>
public sealed partial class OpenEscrowsGauge(IEscrowStore store, IMeterFactory meters, ILogger<OpenEscrowsGauge> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(15);
    private volatile IReadOnlyList<StatusCount> _counts = [];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        EscrowTelemetry.ObserveOpenEscrows(meters, () => _counts
            .Where(c => EscrowStatusNames.TryParseWire(c.Status, out var status) && !status.IsTerminal())
            .Select(c => new Measurement<long>(c.Count, new KeyValuePair<string, object?>("status", c.Status), new KeyValuePair<string, object?>("currency", c.Currency))));
        using var timer = new PeriodicTimer(Interval);
        do
        {
            try
            {
                _counts = await store.CountByStatusAsync(stoppingToken);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                LogFailed(e);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "The open-escrow gauge could not read the projection")]
    private partial void LogFailed(Exception e);
}
