//! Generation behaviour on a fixture: stop tokens, max tokens, context limit, seeded sampling.

use webvlm_model::device::Backend;
use webvlm_model::{DirSource, Vlm};
use webvlm_parity::{device, fixture, goldens};
use webvlm_runtime::{FinishReason, GenerationOptions, Generator};

const FIXTURE: &str = "smolvlm-tiny-single";

fn vlm() -> Vlm {
    Vlm::load(&DirSource::new(fixture(FIXTURE).join("model")).unwrap(), &device(Backend::Cpu)).unwrap()
}

fn generate(vlm: &Vlm, prompt: &str, opts: GenerationOptions) -> (Vec<u32>, Option<FinishReason>) {
    let prepared = vlm.prepare(prompt, None).unwrap();
    let mut g = Generator::new(vlm, prepared, opts).unwrap();
    pollster::block_on(g.prefill()).unwrap();
    while pollster::block_on(g.step()).unwrap().is_some() {}
    (g.generated().to_vec(), g.finish_reason())
}

#[test]
fn stops_at_a_stop_token_unless_told_to_ignore_it() {
    // On wgpu the stop token is seen one step late (the next step is already submitted) and
    // that step is discarded: the same tokens, and the cache the next turn reuses.
    for backend in [Backend::Cpu, Backend::Wgpu] {
        stops_at_a_stop_token_on(Vlm::load(&DirSource::new(fixture(FIXTURE).join("model")).unwrap(), &device(backend)).unwrap());
    }
}

fn stops_at_a_stop_token_on(mut vlm: Vlm) {
    let greedy = GenerationOptions { max_new_tokens: 8, ..Default::default() };
    let (free, _) = generate(&vlm, "Describe the colours", GenerationOptions { ignore_eos: true, ..greedy.clone() });
    assert_eq!(free.len(), 8);
    // Make the third greedy token a stop token: generation must end right there.
    vlm.stop_ids = vec![free[2]];
    let (stopped, reason) = generate(&vlm, "Describe the colours", greedy.clone());
    assert_eq!(reason, Some(FinishReason::Stop));
    assert_eq!(stopped, free[..3].to_vec());
    let (ignored, reason) = generate(&vlm, "Describe the colours", GenerationOptions { ignore_eos: true, ..greedy.clone() });
    assert_eq!(reason, Some(FinishReason::Length));
    assert_eq!(ignored, free);
    // A follow-up after the stop equals a fresh run of the same prompt.
    let mut g = Generator::new(&vlm, vlm.prepare("Describe the colours", None).unwrap(), greedy.clone()).unwrap();
    pollster::block_on(g.prefill()).unwrap();
    while pollster::block_on(g.step()).unwrap().is_some() {}
    assert_eq!(g.finish_reason(), Some(FinishReason::Stop));
    let mut next = g.follow_up(vlm.prepare("Describe the colours again", None).unwrap(), greedy.clone()).unwrap();
    pollster::block_on(next.prefill()).unwrap();
    while pollster::block_on(next.step()).unwrap().is_some() {}
    let (fresh, _) = generate(&vlm, "Describe the colours again", greedy);
    assert_eq!(next.generated(), fresh.as_slice());
}

#[test]
fn the_context_window_ends_a_generation() {
    for backend in [Backend::Cpu, Backend::Wgpu] {
        context_window_ends_a_generation_on(Vlm::load(&DirSource::new(fixture(FIXTURE).join("model")).unwrap(), &device(backend)).unwrap());
    }
}

fn context_window_ends_a_generation_on(vlm: Vlm) {
    let context = vlm.config().text_config.max_position_embeddings;
    let prompt_len = vlm.prepare("Describe the colours", None).unwrap().input_ids.len();
    let opts = GenerationOptions { max_new_tokens: 10 * context, ignore_eos: true, ..Default::default() };
    let (tokens, reason) = generate(&vlm, "Describe the colours", opts);
    assert_eq!(reason, Some(FinishReason::Context));
    assert_eq!(prompt_len + tokens.len(), context + 1, "every position filled, plus the last sampled token");
}

#[test]
fn seeded_sampling_is_reproducible() {
    let vlm = vlm();
    let opts = |seed| GenerationOptions {
        max_new_tokens: 12,
        temperature: 1.5,
        top_k: 50,
        top_p: 0.95,
        repetition_penalty: 1.2,
        seed,
        ignore_eos: true,
    };
    let (a, _) = generate(&vlm, "Describe the colours", opts(1));
    let (b, _) = generate(&vlm, "Describe the colours", opts(1));
    let (c, _) = generate(&vlm, "Describe the colours", opts(2));
    assert_eq!(a, b);
    assert_ne!(a, c, "different seeds should differ over 12 tokens at temperature 1.5");
}

#[test]
fn zero_new_tokens_and_bad_options() {
    let vlm = vlm();
    let (tokens, reason) = generate(&vlm, "hi", GenerationOptions { max_new_tokens: 0, ..Default::default() });
    assert!(tokens.is_empty());
    assert_eq!(reason, Some(FinishReason::Length));
    let prepared = vlm.prepare("hi", None).unwrap();
    let err = Generator::new(&vlm, prepared, GenerationOptions { top_p: 1.5, ..Default::default() }).err().unwrap();
    assert!(err.to_string().contains("top_p"), "{err}");
    let _ = goldens(FIXTURE);
}

#[test]
fn a_follow_up_turn_reuses_the_cache_and_matches_a_fresh_run() {
    use webvlm_model::prompt::Message;
    let vlm = vlm();
    let image = webvlm_parity::fixture_image(FIXTURE);
    let opts = GenerationOptions { max_new_tokens: 6, ignore_eos: true, ..Default::default() };
    let first = vlm.prepare("Describe the colours", Some(&image)).unwrap();
    let first_len = first.input_ids.len();
    let mut g = Generator::new(&vlm, first, opts.clone()).unwrap();
    pollster::block_on(g.prefill()).unwrap();
    while pollster::block_on(g.step()).unwrap().is_some() {}
    let reply = g.text().to_string();

    let conversation = [
        Message::user("Describe the colours", true),
        Message::assistant(&reply),
        Message::user("And the shapes?", false),
    ];
    let second = vlm.prepare_chat(&conversation, Some(&image)).unwrap();
    let mut reused = g.follow_up(second.clone(), opts.clone()).unwrap();
    assert!(
        reused.reused_positions() >= first_len,
        "the first turn's {first_len} prompt positions (image included) are reused, got {}",
        reused.reused_positions()
    );
    pollster::block_on(reused.prefill()).unwrap();
    while pollster::block_on(reused.step()).unwrap().is_some() {}

    let mut fresh = Generator::new(&vlm, second, opts).unwrap();
    pollster::block_on(fresh.prefill()).unwrap();
    while pollster::block_on(fresh.step()).unwrap().is_some() {}
    assert_eq!(reused.generated(), fresh.generated());
}

#[test]
fn a_follow_up_with_a_new_image_starts_over() {
    let vlm = vlm();
    let image = webvlm_parity::fixture_image(FIXTURE);
    let opts = GenerationOptions { max_new_tokens: 3, ignore_eos: true, ..Default::default() };
    let mut g = Generator::new(&vlm, vlm.prepare("Hi", None).unwrap(), opts.clone()).unwrap();
    pollster::block_on(g.prefill()).unwrap();
    while pollster::block_on(g.step()).unwrap().is_some() {}
    let next = g.follow_up(vlm.prepare("Hi", Some(&image)).unwrap(), opts).unwrap();
    assert_eq!(next.reused_positions(), 0, "image tokens in the new suffix force a full prefill");
}

/// Greedy sampling on the device (`shaders/argmax.wgsl`) against the CPU sampler's `argmax`,
/// the reference: rows of odd lengths up to Qwen's vocabulary, ties (the first index wins),
/// -inf everywhere but one entry; rows that are not `finite_row` (NaNs, +inf, only -inf) give
/// `NON_FINITE`, a numerical fault, not a token.
#[test]
fn device_argmax_picks_what_the_cpu_sampler_picks() {
    use webvlm_model::burn::tensor::{Tensor, TensorData};
    use webvlm_model::device::read_f32;
    let gpu = device(Backend::Wgpu);
    let pick = |row: &[f32]| {
        let t = Tensor::<2>::from_data(TensorData::new(row.to_vec(), [1, row.len()]), &gpu);
        let id = webvlm_kernels::ops::argmax(t).unwrap();
        pollster::block_on(webvlm_model::device::read_ids_async(id)).unwrap()
    };
    let mut rng = webvlm_kernels::reference::Lcg::new(11);
    let mut rows: Vec<Vec<f32>> = [1usize, 2, 63, 64, 65, 1000, 49_280, 151_936].iter().map(|&n| rng.normals(n)).collect();
    let mut tie = vec![0.5f32; 300];
    tie[17] = 2.0;
    tie[250] = 2.0;
    tie[3] = 2.0;
    rows.push(tie);
    rows.push(vec![-1.0; 77]);
    let mut inf = vec![f32::NEG_INFINITY; 5000];
    inf[4321] = -1e30;
    rows.push(inf);
    rows.push(vec![f32::NEG_INFINITY; 9]);
    let mut nan = rng.normals(500);
    nan[100] = f32::NAN;
    nan[200] = 1e6;
    nan[300] = f32::NAN;
    rows.push(nan);
    let mut nan0 = rng.normals(130);
    nan0[0] = f32::NAN;
    nan0[5] = 9.0;
    rows.push(nan0);
    let mut pinf = rng.normals(3000);
    pinf[2999] = f32::INFINITY;
    rows.push(pinf);
    for row in &rows {
        let finite = webvlm_kernels::sample::finite_row(row);
        let want = if finite { webvlm_runtime::sampling::argmax(row) } else { webvlm_kernels::sample::NON_FINITE };
        assert_eq!(pick(row), vec![want], "argmax of a row of {} (CPU picks {want})", row.len());
    }
    // The row stays readable where it was: picking does not consume the logits.
    let t = Tensor::<2>::from_data(TensorData::new(rows[2].clone(), [1, 63]), &gpu);
    let _ = webvlm_kernels::ops::argmax(t.clone()).unwrap();
    assert_eq!(read_f32(t).unwrap(), rows[2]);
}

/// On wgpu every pick is made on the device (`argmax.wgsl` when greedy, `sample.wgsl`
/// otherwise) and only the id is read back. Step by step, the host sampler — the reference —
/// picks from the same logits row (read back on request) with the same draw number: both must
/// agree, greedy and with every sampling processor on (the penalty's mask lives on the device
/// and is updated there). They may differ only where the host's decision lay within 1e-5 of
/// the mass from a boundary (f32 sums on the device, f64 on the host), at most once.
#[test]
fn device_picks_match_the_host_sampler_step_by_step() {
    use webvlm_kernels::sample::{sample_ref, uniform};
    use webvlm_runtime::sampling::Sampler;
    let vlm = Vlm::load(&DirSource::new(fixture(FIXTURE).join("model")).unwrap(), &device(Backend::Wgpu)).unwrap();
    let base = GenerationOptions { max_new_tokens: 12, ignore_eos: true, ..Default::default() };
    let runs = [
        base.clone(),
        GenerationOptions { repetition_penalty: 1.3, ..base.clone() },
        GenerationOptions { temperature: 0.9, top_k: 20, top_p: 0.9, repetition_penalty: 1.2, seed: 7, ..base.clone() },
        GenerationOptions { temperature: 1.5, seed: 3, ..base.clone() },
        GenerationOptions { temperature: 3.0, top_p: 0.6, seed: 11, ..base },
    ];
    let (mut sampled, mut near) = (Vec::new(), 0);
    for opts in runs {
        let mut g = Generator::new(&vlm, vlm.prepare("Describe the colours", None).unwrap(), opts.clone()).unwrap();
        let host = Sampler::new(&opts).unwrap();
        let mut seen = g.prompt().input_ids.clone();
        pollster::block_on(g.prefill()).unwrap();
        let mut draw = 0;
        while let Some(row) = pollster::block_on(g.next_logits()).unwrap() {
            let step = pollster::block_on(g.step()).unwrap().expect("a token after logits");
            if host.is_greedy() {
                assert_eq!(step.id, webvlm_runtime::sampling::argmax(&row), "{opts:?}, token {draw}");
            } else {
                let want = sample_ref(&row, &seen, host.settings(), uniform(opts.seed, draw));
                if step.id != want.id {
                    assert!(want.margin < 1e-5, "{opts:?}, token {draw}: device {}, host {} (margin {})", step.id, want.id, want.margin);
                    near += 1;
                }
            }
            draw += 1;
            seen.push(step.id);
        }
        assert_eq!(g.generated().len(), 12);
        sampled.push(g.generated().to_vec());
    }
    assert!(near <= 1, "{near} picks differ from the host's (each within rounding of a boundary)");
    // The seeds and temperatures draw something other than the greedy answer.
    assert!(sampled[2..].iter().any(|s| *s != sampled[0]), "every sampled run repeated the greedy tokens");
}

/// An abort leaves the next token's step and its id read in flight (the step after the one
/// handed out is already submitted); the conversation goes on from where the host stopped, and
/// the next generation is exactly what a fresh one gives.
#[test]
fn an_aborted_generation_leaves_nothing_in_flight_behind() {
    let vlm = Vlm::load(&DirSource::new(fixture(FIXTURE).join("model")).unwrap(), &device(Backend::Wgpu)).unwrap();
    let opts = GenerationOptions { max_new_tokens: 40, ignore_eos: true, ..Default::default() };
    let mut g = Generator::new(&vlm, vlm.prepare("Describe the colours", None).unwrap(), opts.clone()).unwrap();
    pollster::block_on(g.prefill()).unwrap();
    for _ in 0..3 {
        pollster::block_on(g.step()).unwrap().unwrap();
    }
    assert!(g.finish_reason().is_none());
    let next = vlm.prepare("Hello there", None).unwrap();
    let mut after = g.follow_up(next, GenerationOptions { max_new_tokens: 6, ..opts.clone() }).unwrap();
    pollster::block_on(after.prefill()).unwrap();
    while pollster::block_on(after.step()).unwrap().is_some() {}
    let (fresh, _) = generate(&vlm, "Hello there", GenerationOptions { max_new_tokens: 6, ..opts });
    assert_eq!(after.generated(), fresh.as_slice());
}
