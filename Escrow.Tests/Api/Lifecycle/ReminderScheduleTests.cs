namespace Escrow.Tests.Api.Lifecycle;

/// <summary>
/// The escrow's reminder row on PostgreSQL. The create registers it one reminder period ahead (the backstop that
/// re-drives a crash); the hold does not move it later (that would be a commit inside POST /v1/escrows); its first
/// tick, finding nothing due, moves it to the first due time.
/// </summary>
public sealed class ReminderScheduleTests
{
    [Fact]
    public async Task The_hold_keeps_the_backstop_reminder_and_its_first_tick_moves_it_to_the_first_warning()
    {
        // Due times are not capped here (the other API tests cap them at a second so that ticks follow their fake
        // clock): the stored start time shows where the reminder really is.
        await using var app = await LifecycleApp.StartAsync("reminder_schedule", new Dictionary<string, string?>
        {
            ["Escrow:ReminderPeriod"] = "PT1M",
            ["Escrow:MaxReminderDueTime"] = "PT48H",
        });
        var recipient = await app.PayableRecipientAsync();
        var escrow = await app.CreateHeldEscrowAsync(recipient, window: "PT24H");
        var id = escrow.GetProperty("id").GetGuid();
        var createdAt = escrow.GetProperty("createdAt").GetDateTimeOffset();
        var grain = app.Grains.GetGrain<IEscrowGrain>(id);
        var reminders = app.Services.GetRequiredService<IReminderTable>();

        var registered = await reminders.ReadRow(grain.GetGrainId(), "escrow");
        Assert.NotNull(registered);
        Assert.Equal(TimeSpan.FromMinutes(1), registered.Period);
        // Still the create's backstop, not the 50 % warning twelve hours on.
        Assert.True(registered.StartAt < createdAt + TimeSpan.FromMinutes(10), $"reminder starts at {registered.StartAt:O}, escrow created at {createdAt:O}");

        // The tick one period later (what ReceiveReminder does): nothing is due, so the reminder moves to the warning.
        app.Clock.Advance(TimeSpan.FromMinutes(2));
        await grain.WakeAsync();

        var moved = await reminders.ReadRow(grain.GetGrainId(), "escrow");
        Assert.NotNull(moved);
        Assert.NotEqual(registered.ETag, moved.ETag);
        Assert.True(moved.StartAt > createdAt + TimeSpan.FromHours(11) && moved.StartAt < createdAt + TimeSpan.FromHours(13),
            $"reminder starts at {moved.StartAt:O}, escrow created at {createdAt:O} (warning due 12 h after)");
        Assert.Equal("held", (await app.GetEscrowAsync(id)).GetProperty("status").GetString());
        Assert.DoesNotContain(app.Postmark.Outbox, m => m.Tag == "deadline-reminder-50" && m.Metadata.GetValueOrDefault("escrow_id") == id.ToString("D"));
    }

    [Fact]
    public async Task A_create_refused_by_the_daily_limit_leaves_no_reminder_row()
    {
        // The create registers its reminder while the recipient reserves the slot; a refused slot takes it away again.
        await using var app = await LifecycleApp.StartAsync("reminder_refused");
        var recipient = await app.PayableRecipientAsync(dailyLimit: 1);
        var held = await app.CreateHeldEscrowAsync(recipient);
        var reminders = app.Services.GetRequiredService<IReminderTable>();
        Assert.NotNull(await reminders.ReadRow(app.Grains.GetGrain<IEscrowGrain>(held.Id()).GetGrainId(), "escrow"));

        var key = Guid.NewGuid().ToString();
        var refused = await app.PostEscrowAsync(EscrowApiFactory.EscrowBody(recipient), key);

        Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
        var id = EscrowEndpoints.EscrowIdFor(key);
        Assert.Null(await reminders.ReadRow(app.Grains.GetGrain<IEscrowGrain>(id).GetGrainId(), "escrow"));
        Assert.Equal(HttpStatusCode.NotFound, (await app.Platform().GetAsync($"/v1/escrows/{id}")).StatusCode);
    }
}
