using Orleans.Core.Internal;

namespace Escrow.Tests.Grains;

/// <summary>
/// A create is answered once the hold is durable; the e-mails of the hold are sent right after, and their completion
/// is not written on its own: it rides on the escrow's next write, and the e-mail log keeps a new activation from
/// sending them again in between.
/// </summary>
public sealed class EscrowEmailDeferralTests(GatedStorageFixture f) : IClassFixture<GatedStorageFixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static CreateEscrow Request(string recipient) =>
        new(recipient, "sender@example.com", TimeSpan.FromHours(24), "Subject", "A message of some length.", "pm_card_visa", "AB12");

    private EscrowState? Stored(IEscrowGrain grain) => f.Storage.Stored<EscrowState>("escrow", grain.GetGrainId());

    [Fact]
    public async Task The_create_is_answered_once_the_hold_is_durable_while_Postmark_has_not_answered_yet()
    {
        var recipient = await f.NewRecipientAsync();
        var id = Guid.NewGuid();
        var grain = f.Grains.GetGrain<IEscrowGrain>(id);
        f.Emails.Hold();
        try
        {
            // Bounded: before this change the create waited for both sends, so with Postmark held it never answered.
            var created = await grain.CreateAsync(Request(recipient)).WaitAsync(Bound);

            Assert.True(created.Accepted, created.RejectionCode);
            Assert.Equal("held", created.View!.Status);
            Assert.Equal(EscrowStatus.Held, Stored(grain)!.Status);
            Assert.Equal(0, f.Emails.Count(id, "new-message"));
        }
        finally
        {
            f.Emails.Open();
        }
        await Eventually.UntilAsync(() => Task.FromResult(f.Emails.Count(id, "new-message") == 1 && f.Emails.Count(id, "payment-receipt") == 1),
            "the new-message and payment-receipt emails after the answer");
    }

    [Fact]
    public async Task Sent_emails_cost_no_write_of_their_own_and_a_new_activation_does_not_send_them_again()
    {
        var recipient = await f.NewRecipientAsync();
        var (id, grain, _) = await f.NewHeldEscrowAsync(recipient);
        await Eventually.UntilAsync(() => Task.FromResult(f.Emails.Count(id, "new-message") == 1 && f.Emails.Count(id, "payment-receipt") == 1),
            "the emails of the hold");
        // The ledger is synced after the e-mails, in the same turn: once it is there, that turn is over.
        await Eventually.UntilAsync(async () => (await f.Store.GetLedgerAsync(id)).Count == Stored(grain)!.History.Length, "the ledger of the hold");

        // Two writes: the intent before the card hold, and the hold. The sent e-mails are still pending in what is stored.
        Assert.Equal(2, f.Storage.WritesTo(grain.GetGrainId()));
        Assert.Equal(2, Stored(grain)!.Outbox.Count(e => e.Kind == EffectKind.SendEmail));

        // A new activation reads those pending e-mails back; the e-mail log says they were sent.
        await grain.AsReference<IGrainManagementExtension>().DeactivateOnIdle();
        var management = f.Grains.GetGrain<IManagementGrain>(0);
        await Eventually.UntilAsync(async () => await management.GetActivationAddress(grain) is null, "the escrow's activation to be deactivated");
        var reply = await grain.AcceptReplyAsync(new ReplyReceived(f.Clock.GetUtcNow(), "platform", "Thanks!"));
        Assert.True(reply.Accepted, reply.RejectionCode);
        await Eventually.UntilAsync(async () => (await grain.GetAsync())!.Status == "released", "released");

        Assert.Equal(1, f.Emails.Count(id, "new-message"));
        Assert.Equal(1, f.Emails.Count(id, "payment-receipt"));
        // The completions rode on the reply's writes, one before each effect whose deciding state was not yet durable
        // (the reply before its e-mail and the capture, the capture before the transfer, the release before the payout
        // e-mail) and the terminal one; no e-mail of the hold caused a write of its own.
        Assert.Equal(6, f.Storage.WritesTo(grain.GetGrainId()));
        var stored = Stored(grain)!;
        Assert.Equal(EscrowStatus.Released, stored.Status);
        Assert.Empty(stored.Outbox);
    }
}
