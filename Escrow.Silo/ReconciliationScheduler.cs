using Escrow.Grains;

namespace Escrow.Silo;

/// <summary>Once the host has started, makes sure the daily reconciliation reminder exists (idempotent).</summary>
public sealed partial class ReconciliationScheduler(IGrainFactory grains, IHostApplicationLifetime lifetime, ILogger<ReconciliationScheduler> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(() => _ = ScheduleAsync());
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task ScheduleAsync()
    {
        try
        {
            await grains.GetGrain<IReconciliationGrain>(0).EnsureScheduledAsync();
        }
        catch (Exception e) when (e is OrleansException or TimeoutException or InvalidOperationException)
        {
            LogFailed(e);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The daily reconciliation could not be scheduled; it runs again at the next start, or by POST /v1/admin/reconciliation")]
    private partial void LogFailed(Exception e);
}
