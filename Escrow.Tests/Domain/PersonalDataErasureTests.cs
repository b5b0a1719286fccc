namespace Escrow.Tests.Domain;

public sealed class PersonalDataErasureTests
{
    private static readonly DateTimeOffset Later = AnEscrow.T0.AddDays(3);

    /// <summary>The escrow once its e-mails are sent (the outbox emptied of them).</summary>
    private static EscrowState Mailed(EscrowState s) =>
        s.Outbox.Where(e => e.Kind == EffectKind.SendEmail).Select(e => e.Id).ToList().Aggregate(s, (x, id) => x.Then(new EffectCompleted(id), Later));

    [Fact]
    public void Erasing_a_finished_escrow_replaces_the_texts_and_the_sender_keeping_ids_and_amounts()
    {
        var s = Mailed(AnEscrow.Released());

        var erased = s.Then(new ErasePersonalData(BodiesOnly: false), Later);

        Assert.Equal(("erased", "erased", "erased"), (erased.SenderEmail, erased.Subject, erased.Message));
        Assert.Equal((s.Id, s.Amount, s.Split, s.TransferId, s.Status), (erased.Id, erased.Amount, erased.Split, erased.TransferId, erased.Status));
        Assert.Equal("personal_data_erased", erased.History[^1].Event);
        Assert.Equal("already_done", erased.Decide(new ErasePersonalData(BodiesOnly: false), Later).Rejection?.Code);
    }

    [Fact]
    public void Retention_erases_the_bodies_and_keeps_the_senders_address()
    {
        var s = Mailed(AnEscrow.Refunded());

        var retired = s.Then(new ErasePersonalData(BodiesOnly: true), Later);

        Assert.Equal((s.SenderEmail, "erased", "erased"), (retired.SenderEmail, retired.Subject, retired.Message));
        Assert.Equal("already_done", retired.Decide(new ErasePersonalData(BodiesOnly: true), Later).Rejection?.Code);
        Assert.Equal("erased", retired.Then(new ErasePersonalData(BodiesOnly: false), Later).SenderEmail);
    }

    [Fact]
    public void An_open_escrow_or_a_finished_one_with_e_mails_to_send_keeps_its_personal_data()
    {
        Assert.Equal("escrow_open", AnEscrow.Held().Decide(new ErasePersonalData(BodiesOnly: false), Later).Rejection?.Code);
        var refunded = AnEscrow.Refunded();
        Assert.True(refunded.HasEmail(EmailKind.RefundIssued));
        Assert.Equal("escrow_open", refunded.Decide(new ErasePersonalData(BodiesOnly: false), Later).Rejection?.Code);
    }
}
