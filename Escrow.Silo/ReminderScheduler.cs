namespace Escrow.Silo;

/// <summary>Once the host has started, makes sure the daily reconciliation and the stuck-escrow monitor have their reminders (idempotent).</summary>
public sealed partial class ReminderScheduler(IGrainFactory grains, IHostApplicationLifetime lifetime, ILogger<ReminderScheduler> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStarted.Register(() => _ = ScheduleAsync());
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task ScheduleAsync()
    {
        await ScheduleAsync("the daily reconciliation", () => grains.GetGrain<IReconciliationGrain>(0).EnsureScheduledAsync());
        await ScheduleAsync("the stuck-escrow monitor", () => grains.GetGrain<IMonitorGrain>(0).EnsureScheduledAsync());
        await ScheduleAsync("the retention of message bodies", () => grains.GetGrain<IRetentionGrain>(0).EnsureScheduledAsync());
    }

    private async Task ScheduleAsync(string what, Func<Task> ensure)
    {
        try
        {
            await ensure();
        }
        catch (Exception e) when (e is OrleansException or TimeoutException or InvalidOperationException)
        {
            LogFailed(e, what);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "The reminder of {What} could not be registered; it is registered again at the next start")]
    private partial void LogFailed(Exception e, string what);
}
